"""The Python side of `cargo xtask bench --backends snowflake`, against the fakesnow emulator.

    python snowflake_load.py --port PORT --rows N --mode prepare|arrow|pandas|raw

prepare: creates BENCH.PUBLIC.CONNECTIONS_BENCH_<N> (N rows x 5 columns: NUMBER, FLOAT,
         VARCHAR, DATE, TIMESTAMP_NTZ) unless it already holds N rows.
arrow:   one cold `cursor.execute(sql).fetch_arrow_all()` of the Python connector.
pandas:  one cold `cursor.execute(sql).fetch_pandas_all()`.
raw:     the floor: the same query request sent over plain HTTP (http.client) with the session
         token of a connector login, timed from sending it to the last byte of the response
         (no JSON parsing, no decoding): what the server and the transport cost.

Prints one line of JSON: rows, seconds (wall clock around the timed part alone; the login is
outside it), the result's size (Arrow `Table.nbytes`, pandas `memory_usage(deep=True)`, or the
response's bytes) and the process's peak resident set (`ru_maxrss`, kB on Linux) before and
after. Run it in its own process for every measurement, so that every load is cold.
"""

import argparse
import http.client
import json
import resource
import sys
import time

import snowflake.connector

DATABASE, SCHEMA = "BENCH", "PUBLIC"


def table_name(rows: int) -> str:
    return f"CONNECTIONS_BENCH_{rows}"


def connect(port: int, **extra):
    return snowflake.connector.connect(
        host="127.0.0.1",
        port=port,
        protocol="http",
        account="fakesnow",
        user="fake",
        password="snow",
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        network_timeout=600,
        **extra,
    )


def prepare(port: int, rows: int) -> dict:
    started = time.perf_counter()
    conn = connect(port)
    cur = conn.cursor()
    cur.execute(f"create database if not exists {DATABASE}")
    cur.execute(f"create schema if not exists {DATABASE}.{SCHEMA}")
    cur.execute(f"use schema {DATABASE}.{SCHEMA}")
    table = table_name(rows)
    try:
        held = cur.execute(f"select count(*) from {table}").fetchone()[0]
    except snowflake.connector.errors.ProgrammingError:
        held = None
    generated = held != rows
    if generated:
        cur.execute(
            f"create or replace table {table} as select seq4() as id, seq4() * 1.5::float as amount, "
            "'name ' || seq4() as name, dateadd(day, seq4() % 1000, '2020-01-01'::date) as created, "
            "dateadd(second, seq4(), '2020-01-01 00:00:00'::timestamp_ntz) as updated "
            f"from table(generator(rowcount => {rows}))"
        )
    conn.close()
    return {"generated": generated, "rows": rows, "table": table, "seconds": time.perf_counter() - started}


def measure(port: int, rows: int, mode: str) -> dict:
    sql = f"select * from {table_name(rows)}"
    conn = connect(port, database=DATABASE, schema=SCHEMA)
    cur = conn.cursor()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "raw":
        body = json.dumps({"sqlText": sql, "sequenceId": 1, "asyncExec": False, "describeOnly": False})
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/snowflake",
            "Authorization": f'Snowflake Token="{conn.rest.token}"',
        }
        http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        started = time.perf_counter()
        http_conn.request("POST", "/queries/v1/query-request", body=body, headers=headers)
        response = http_conn.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
        if response.status != 200 or b'"success":true' not in data[-200:]:
            raise SystemExit(f"the raw query request failed: HTTP {response.status} {data[-300:]!r}")
        out = {"rows": rows, "response_bytes": len(data)}
    elif mode == "arrow":
        started = time.perf_counter()
        table = cur.execute(sql).fetch_arrow_all()
        seconds = time.perf_counter() - started
        out = {"rows": table.num_rows, "arrow_bytes": table.nbytes,
               "schema": [f"{field.name}: {field.type}" for field in table.schema]}
    elif mode == "pandas":
        started = time.perf_counter()
        frame = cur.execute(sql).fetch_pandas_all()
        seconds = time.perf_counter() - started
        out = {"rows": len(frame), "pandas_bytes": int(frame.memory_usage(deep=True).sum())}
    else:
        raise SystemExit(f"unknown mode {mode}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    conn.close()
    return {
        "peer": f"snowflake-connector-python {mode}",
        "version": snowflake.connector.__version__,
        "seconds": seconds,
        "rss_before_kb": rss_before,
        "peak_rss_kb": peak,
        **out,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="the emulator's port on 127.0.0.1")
    parser.add_argument("--rows", type=int, required=True, help="rows of the table")
    parser.add_argument("--mode", required=True, choices=["prepare", "arrow", "pandas", "raw"])
    args = parser.parse_args()
    result = prepare(args.port, args.rows) if args.mode == "prepare" else measure(args.port, args.rows, args.mode)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
