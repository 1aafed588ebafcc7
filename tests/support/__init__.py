"""Every helper the tests share, and nothing else: conftest.py only turns some of them into fixtures.

processes   the loggend command line as tests run it (Loggend, run_loggend, start_sink), a loopback
            receiver, wait_until (a condition and a deadline: the tests' only way to wait), summary_of
console     reading what a person sees (live lines, the sink's summary block), for the console's own tests
receivers   real receivers (rsyslog, syslog-ng, a TLS PKI, free ports); prometheus, promql: a private one
slowest     the slowest tests of make test's two passes (parallel, then serial)

A test marked ``serial`` asserts a time or a rate (or changes the whole machine): make test runs those
alone after the parallel pass (pytest-xdist), so a busy neighbour cannot make them flaky.
"""
