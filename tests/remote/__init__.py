"""Tests of reading checkpoints from remote storage (HTTP range requests, a Hub stand-in, S3 through moto)."""
