"""The peer side of `cargo xtask bench`: one connectorx load, timed in-process.

    python connectorx_load.py --url URL --query SQL

Prints one line of JSON: rows, seconds (wall clock around `cx.read_sql(...)` alone, which for
connectorx includes opening its connection), the Arrow size of the result (`Table.nbytes`),
and the process's peak resident set (`ru_maxrss`, kB on Linux) before and after the call.
Run it in its own process for every measurement, so that every load is cold.
"""

import argparse
import json
import resource
import sys
import time

import connectorx as cx
import pyarrow  # noqa: F401  (imported before timing: connectorx needs it for return_type="arrow")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="connectorx connection string")
    parser.add_argument("--query", required=True, help="the SQL to load")
    args = parser.parse_args()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    table = cx.read_sql(args.url, args.query, return_type="arrow")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    print(
        json.dumps(
            {
                "peer": "connectorx",
                "version": cx.__version__,
                "rows": table.num_rows,
                "columns": table.num_columns,
                "arrow_bytes": table.nbytes,
                "seconds": seconds,
                "rss_before_kb": rss_before,
                "peak_rss_kb": peak,
                "schema": [f"{field.name}: {field.type}" for field in table.schema],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
