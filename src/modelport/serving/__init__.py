"""The inference server: wire protocols → one internal request → router → batcher → model."""
