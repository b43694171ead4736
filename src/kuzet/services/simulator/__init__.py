"""Simulated cameras: looping H.264 clips served over real RTSP (``kuzet sim``), for the demo, tests and benchmarks."""
