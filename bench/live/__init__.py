"""Live streaming benchmark: the publishers' clip, the servers (gortc and
nginx with the RTMP module), see ``bench/live_bench.py``."""
