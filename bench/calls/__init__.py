"""Group video call benchmark: gortc's SFU against Janus's VideoRoom with the
same aiortc bots (see bench/calls_bench.py)."""
