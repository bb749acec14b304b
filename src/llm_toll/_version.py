"""The version: the one place it is written (the build reads it from here too), so that
reading it costs no package-metadata lookup."""

VERSION = "1.0.0"
