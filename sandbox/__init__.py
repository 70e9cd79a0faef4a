"""The local sandbox: Pebble, loopback challenge serving and (later) the OCI emulator.

Never shipped in the function image; used by tests, the demo and the benchmarks.
"""
