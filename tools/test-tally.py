#!/usr/bin/env python3
"""Adds up the Check results in meson test logs (testlog.json files) and
prints one closing line, `tests: N passed, N failed`, for CI logs."""
import json
import re
import sys

passed = failed = 0
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            m = re.findall(r'Checks: (\d+), Failures: (\d+), Errors: (\d+)', t.get('stdout', ''))
            if m:
                for checks, failures, errors in m:
                    bad = int(failures) + int(errors)
                    passed += int(checks) - bad
                    failed += bad
            elif t.get('result') == 'OK':
                passed += 1  # a non-Check test (a script): one test
            else:
                failed += 1
print('tests: %d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
