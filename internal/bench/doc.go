// Package bench is `gobridge bench`: it measures every gobridge transport
// next to Python's own multiprocessing, baselines measured in the same run,
// and prints the figures as a table, JSON or an SVG chart.
//
// The Python side of each measurement is a role module in python/ (the
// unix and pipe roles in gobridge_bench.py, the transports in
// gobridge_bench_shm_conn.py, the queue and wake-floor roles in
// gobridge_bench_queue.py, shm copies in gobridge_bench_shm.py, the pool's
// task in gobridge_bench_pool.py). They are embedded in the binary, not
// installed with the gobridge Python package: Run writes them to a private
// temporary directory (0700, removed when it returns) and starts
// `python -m ROLE` with that directory first on PYTHONPATH. The roles
// import gobridge's public API; the one role that needs private modules
// (the futex and fence of the wake floor) imports them through one shim at
// its top.
//
// FindPython picks the interpreter: --python, else the first of
// $VIRTUAL_ENV's, the .venv next to the binary, the .venv of the current
// directory or a parent, python3 that can import gobridge.
package bench
