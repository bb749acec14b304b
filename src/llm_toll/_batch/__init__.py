"""Recording the results of provider batches (``llm_toll.record_batch``)."""
