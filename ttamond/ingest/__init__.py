"""The ingestion API: what TTA components send, validated, made private, and handed on."""
