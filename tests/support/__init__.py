"""Every helper the tests share, and nothing else: conftest.py only turns some of them into fixtures.

processes   the loggend command line as tests run it (Loggend, run_loggend, start_sink), a loopback
            receiver, wait_until (a condition and a deadline: the tests' only way to wait), summary_of
console     reading what a person sees (live lines, the sink's summary block), for the console's own tests
receivers   real receivers (rsyslog, syslog-ng, a TLS PKI, free ports); prometheus, promql: a private one
slowest     the slowest tests of make test's passes (parallel, serial, alone)

A test marked ``serial`` asserts a time or a rate but needs little CPU: make test runs those after the
parallel pass (pytest-xdist), a few at a time, so a busy neighbour cannot make them flaky. A test marked
``alone`` takes the whole machine (a rate as fast as it goes, a CPU verdict) or changes it (kernel
tuning): it runs by itself, last.
"""
