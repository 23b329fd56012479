#!/usr/bin/env python3
"""Record RavenDB's answers to the SQL ETL test endpoint as conformance fixtures.

Usage:
    python3 tests/conformance/record_sql_etl.py [--url http://127.0.0.1:8080] \
        [--out crates/corvid-server/tests/fixtures/sql_etl] [--only NAME ...]

Against a RavenDB (4.1) server this creates a throwaway database, stores the source documents
and their attachments, defines the PostgreSQL (Npgsql) connection string, POSTs every case to
`/databases/{db}/admin/etl/sql/test` (`PerformRolledBackTransaction: false`: RavenDB only
simulates, no PostgreSQL is needed) and writes one fixture per case:

    {"name", "description", "recorded_with", "documents": [{"id", "document", "attachments":
        [{"name", "content_type", "base64"}]}], "document_id", "connection", "configuration",
     "ravendb_status", "ravendb": <response body>}

The database is deleted at the end. Standard library only.
"""

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "crates", "corvid-server", "tests", "fixtures", "sql_etl")

CONNECTION = {
    "Type": "Sql",
    "Name": "pg",
    "FactoryName": "Npgsql",
    "ConnectionString": "Host=127.0.0.1;Port=5432;Database=test;Username=postgres",
}

# ---------------------------------------------------------------------------------------------
# Source documents: every case sees the same set, so a Corvid test can create them all.

PNG = b"\x89PNG\r\n\x1a\nnot-really-a-png"

DOCUMENTS = [
    {
        "id": "orders/1-A",
        "document": {
            "Company": "companies/1-A",
            "Employee": "employees/404",
            "OrderedAt": "2024-01-02T03:04:05.1234567Z",
            "Freight": 19.99,
            "Paid": True,
            "Discount": None,
            "Priority": -7,
            "Big": 9007199254740991,
            "Huge": 1234567890123456789,
            "Note": "O'Reilly's \"caf\u00e9\" \u2615 \u2014 na\u00efve",
            "ShipTo": {"City": "Oslo", "Country": "Norway", "Zip": None},
            "Tags": ["rush", "gift"],
            "Lines": [
                {"Product": "products/1-A", "ProductName": "Chai", "Quantity": 2, "PricePerUnit": 18.0},
                {"Product": "products/2-A", "ProductName": "Chang", "Quantity": 1, "PricePerUnit": 19},
                {"Product": "products/3-A", "ProductName": "Aniseed Syrup", "Quantity": 5,
                 "PricePerUnit": 10, "Discount": 0.15},
            ],
            "@metadata": {"@collection": "Orders"},
        },
        "attachments": [
            {"name": "photo.png", "content_type": "image/png", "base64": base64.b64encode(PNG).decode()},
        ],
    },
    {
        "id": "Orders/2-B",
        "document": {
            "Company": "companies/1-A",
            "Freight": 3,
            "Paid": False,
            "Lines": [],
            "@metadata": {"@collection": "Orders"},
        },
        "attachments": [],
    },
    {
        "id": "companies/1-A",
        "document": {"Name": "Acme Ltd", "Country": "NO", "@metadata": {"@collection": "Companies"}},
        "attachments": [],
    },
]

# ---------------------------------------------------------------------------------------------
# Cases.

ORDERS = {"TableName": "Orders", "DocumentIdColumn": "Id", "InsertOnlyMode": False}
ORDER_LINES = {"TableName": "OrderLines", "DocumentIdColumn": "OrderId", "InsertOnlyMode": False}
AUDIT = {"TableName": "Audit", "DocumentIdColumn": "DocId", "InsertOnlyMode": False}

FAN_OUT = (
    "loadToOrders({Company: this.Company, Freight: this.Freight, LineCount: this.Lines.length});\n"
    "for (var i = 0; i < this.Lines.length; i++) {\n"
    "  var l = this.Lines[i];\n"
    "  loadToOrderLines({Product: l.Product, Qty: l.Quantity, Cost: l.Quantity * l.PricePerUnit});\n"
    "}"
)

# name, description, document id, script, and optionally:
#   tables (default [ORDERS]), settings (merged into the configuration; default QuoteTables and
#   ParameterizeDeletes true, as the official clients send them; None values are left out).
CASES = [
    dict(name="fan_out_orders_and_lines",
         description="Orders -> one Orders row and one OrderLines row per line; both tables deleted first",
         doc="orders/1-A", tables=[ORDERS, ORDER_LINES], script=FAN_OUT),
    dict(name="table_not_in_script_still_deleted",
         description="a configured table the script never mentions (Audit) still gets its DELETE",
         doc="orders/1-A", tables=[ORDERS, ORDER_LINES, AUDIT], script=FAN_OUT),
    dict(name="two_tables_script_loads_one",
         description="the script mentions both tables but this document loads only Orders",
         doc="orders/1-A", tables=[ORDERS, ORDER_LINES],
         script="if (this.Lines.length > 100) {\n"
                "  loadToOrderLines({Product: 'never'});\n"
                "}\n"
                "loadToOrders({Company: this.Company});"),
    dict(name="insert_only_mode",
         description="InsertOnlyMode on Orders: no DELETE there; OrderLines still deleted",
         doc="orders/1-A",
         tables=[dict(ORDERS, InsertOnlyMode=True), ORDER_LINES], script=FAN_OUT),
    dict(name="quote_tables_false",
         description="QuoteTables false: table names written as configured",
         doc="orders/1-A", tables=[ORDERS, ORDER_LINES], script=FAN_OUT,
         settings={"QuoteTables": False}),
    dict(name="quote_tables_omitted",
         description="QuoteTables and ParameterizeDeletes not sent at all",
         doc="orders/1-A", script="loadToOrders({Company: this.Company});",
         settings={"QuoteTables": None, "ParameterizeDeletes": None}),
    dict(name="schema_qualified_table",
         description="TableName public.Orders: 4.1 has no loadTo function that reaches it "
                     "(loadToOrders is not in SqlTables), so only the DELETE remains",
         doc="orders/1-A",
         tables=[{"TableName": "public.Orders", "DocumentIdColumn": "Id", "InsertOnlyMode": False}],
         script="loadToOrders({Company: this.Company});"),
    dict(name="parameterize_deletes_true",
         description="ParameterizeDeletes true (the rows are what counts, not the statement text)",
         doc="orders/1-A", tables=[ORDERS, ORDER_LINES], script=FAN_OUT,
         settings={"ParameterizeDeletes": True}),
    dict(name="parameterize_deletes_false",
         description="ParameterizeDeletes false: ids inlined",
         doc="orders/1-A", tables=[ORDERS, ORDER_LINES], script=FAN_OUT,
         settings={"ParameterizeDeletes": False}),
    dict(name="values_scalars",
         description="null, booleans, integers (small, negative, 2^53-1, beyond 2^53), decimals, computed numbers",
         doc="orders/1-A",
         script="loadToOrders({Discount: this.Discount, Explicit: null, Paid: this.Paid, NotPaid: !this.Paid,\n"
                "  Priority: this.Priority, Zero: 0, Big: this.Big, Huge: this.Huge, Freight: this.Freight,\n"
                "  Negative: -2.5, Whole: 18.0, Half: this.Lines.length / 2, Total: this.Lines[0].Quantity * this.Lines[0].PricePerUnit});"),
    dict(name="values_strings_and_dates",
         description="strings with quotes and non-ASCII, empty, numeric-looking; ISO date strings",
         doc="orders/1-A",
         script="loadToOrders({Note: this.Note, Empty: '', Digits: '42', OrderedAt: this.OrderedAt,\n"
                "  NoZone: '2024-01-02T03:04:05', DateOnly: '2024-01-02', Company: this.Company});"),
    dict(name="values_json",
         description="nested object and arrays become JSON text",
         doc="orders/1-A",
         script="loadToOrders({ShipTo: this.ShipTo, Tags: this.Tags, NoTags: [], Numbers: [1, 2.5, -3],\n"
                "  Nested: {Name: this.Note, Inner: {Ok: true, None: null}}, FirstLine: this.Lines[1]});"),
    dict(name="values_typed",
         description="varchar(x, 10), nvarchar(x), and an explicit {Type, Value} object",
         doc="orders/1-A",
         script="loadToOrders({V: varchar(this.Note, 10), N: nvarchar(this.ShipTo.City),\n"
                "  T: {Type: 'Int32', Value: 5}, D: {Type: 'Double', Value: this.Freight}});"),
    dict(name="values_undefined_and_missing",
         description="undefined, a missing field and a missing nested field",
         doc="orders/1-A",
         script="loadToOrders({Missing: this.NoSuchField, Undef: undefined, Zip: this.ShipTo.Zip,\n"
                "  Region: this.ShipTo.Region, City: this.ShipTo.City});"),
    dict(name="id_column_set_by_script",
         description="the script sets the document-id column itself; the source id wins",
         doc="orders/1-A", tables=[ORDERS, ORDER_LINES],
         script="loadToOrders({Id: 'overridden', Company: this.Company});\n"
                "loadToOrderLines({OrderId: 'nope', Product: this.Lines[0].Product});"),
    dict(name="id_column_other_case",
         description="a column named like the document-id column but in another case (id vs Id)",
         doc="orders/1-A",
         script="loadToOrders({id: 'lower', Company: this.Company});"),
    dict(name="filter_loads_nothing",
         description="a filter the document does not pass: no rows, the DELETE still runs",
         doc="Orders/2-B", tables=[ORDERS, ORDER_LINES],
         script="if (this.Paid) {\n  loadToOrders({Company: this.Company});\n}"),
    dict(name="script_error_throw",
         description="a throw after a loadTo: one transformation error; debug output kept",
         doc="orders/1-A",
         script="output('before');\nloadToOrders({Company: this.Company});\nthrow new Error('boom');"),
    dict(name="output_debug",
         description="output() lines go to DebugOutput",
         doc="orders/1-A",
         script="output('company ' + this.Company);\noutput(this.Lines.length);\noutput(this.Freight);\n"
                "output(this.ShipTo.City);\nloadToOrders({Company: this.Company});"),
    dict(name="attachment_binary",
         description="loadAttachment() into a column: binary",
         doc="orders/1-A",
         script="loadToOrders({Company: this.Company, Photo: loadAttachment('photo.png')});"),
    dict(name="attachment_missing",
         description="loadAttachment() of a missing attachment: NULL",
         doc="orders/1-A",
         script="loadToOrders({Company: this.Company, Photo: loadAttachment('nope.png')});"),
    dict(name="load_related_document",
         description="load() of another document, and of a missing one",
         doc="orders/1-A",
         script="var c = load(this.Company);\nvar e = load(this.Employee);\n"
                "loadToOrders({CompanyName: c.Name, Country: c.Country, Employee: e});"),
    dict(name="mixed_case_document_id",
         description="a document id with capitals (Orders/2-B): how the id is written",
         doc="Orders/2-B", tables=[ORDERS, ORDER_LINES],
         script="loadToOrders({Company: this.Company, Freight: this.Freight});"),
    dict(name="rows_with_different_columns",
         description="rows of one table with different column sets, interleaved",
         doc="orders/1-A", tables=[ORDERS, ORDER_LINES],
         script="for (var i = 0; i < this.Lines.length; i++) {\n"
                "  var l = this.Lines[i];\n"
                "  if (l.Discount) loadToOrderLines({Product: l.Product, Discount: l.Discount});\n"
                "  else loadToOrderLines({Qty: l.Quantity, Product: l.Product});\n"
                "}\n"
                "loadToOrderLines({Product: 'extra', Qty: 0});"),
    dict(name="load_this_whole_document",
         description="loadToOrders(this): every field of the document becomes a column",
         doc="Orders/2-B", script="loadToOrders(this);"),
    dict(name="unknown_table",
         description="loadToNope where Nope is not in SqlTables (4.1 ignores that call)",
         doc="orders/1-A",
         script="loadToOrders({Company: this.Company});\nloadToNope({X: 1});"),
    dict(name="loadto_table_other_case",
         description="loadToorders with TableName Orders",
         doc="orders/1-A", script="loadToorders({Company: this.Company});"),
]


def configuration(case):
    config = {
        "EtlType": "Sql",
        "Name": "conformance-" + case["name"],
        "ConnectionStringName": CONNECTION["Name"],
        "Disabled": False,
        "QuoteTables": True,
        "ParameterizeDeletes": True,
        "SqlTables": case.get("tables", [ORDERS]),
        "Transforms": [{
            "Name": "script1",
            "Collections": ["Orders"],
            "ApplyToAllDocuments": False,
            "Disabled": False,
            "Script": case["script"],
        }],
    }
    for key, value in case.get("settings", {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


# ---------------------------------------------------------------------------------------------

class Server:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def request(self, method, path, body=None, raw=None, content_type="application/json"):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, text = resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode("utf-8", "replace")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def must(self, method, path, body=None, **kw):
        status, answer = self.request(method, path, body, **kw)
        if not 200 <= status < 300:
            sys.exit(f"{method} {path} -> {status}: {answer}")
        return answer


def q(value):
    return urllib.parse.quote(value, safe="")


def summarise(status, answer):
    if not isinstance(answer, dict) or "Summary" not in answer:
        return f"{status} {str(answer)[:200]}"
    tables = []
    for table in answer.get("Summary") or []:
        kinds = [c["CommandText"].split(" ", 1)[0] for c in table.get("Commands") or []]
        tables.append(f"{table['TableName']}:{'+'.join(kinds)}")
    return (f"{status} {' '.join(tables)} errors={len(answer.get('TransformationErrors') or [])} "
            f"output={answer.get('DebugOutput')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("RAVENDB_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", help="record only these case names")
    args = parser.parse_args()

    server = Server(args.url)
    version = server.must("GET", "/build/version")
    print(f"RavenDB {version.get('FullVersion')} at {server.url}")
    db = f"sql_etl_conformance_{int(time.time())}"
    server.must("PUT", f"/admin/databases?name={q(db)}&replicationFactor=1", {"DatabaseName": db})
    try:
        for _ in range(50):  # the database may take a moment to load
            status, _ = server.request("GET", f"/databases/{q(db)}/stats")
            if status == 200:
                break
            time.sleep(0.2)
        # The request carries the connection inline; RavenDB also wants it stored.
        server.must("PUT", f"/databases/{q(db)}/admin/connection-strings", CONNECTION)
        for doc in DOCUMENTS:
            server.must("PUT", f"/databases/{q(db)}/docs?id={q(doc['id'])}", doc["document"])
            for att in doc["attachments"]:
                server.must("PUT", f"/databases/{q(db)}/attachments?id={q(doc['id'])}&name={q(att['name'])}"
                                   f"&contentType={q(att['content_type'])}",
                            raw=base64.b64decode(att["base64"]), content_type="application/octet-stream")

        os.makedirs(args.out, exist_ok=True)
        names = set()
        for case in CASES:
            name = case["name"]
            assert name not in names, name
            names.add(name)
            if args.only and name not in args.only:
                continue
            config = configuration(case)
            request = {
                "DocumentId": case["doc"],
                "IsDelete": False,
                "PerformRolledBackTransaction": False,
                "Connection": CONNECTION,
                "Configuration": config,
            }
            status, answer = server.request("POST", f"/databases/{q(db)}/admin/etl/sql/test", request)
            fixture = {
                "name": name,
                "description": case["description"],
                "recorded_with": version.get("FullVersion"),
                "documents": DOCUMENTS,
                "document_id": case["doc"],
                "connection": CONNECTION,
                "configuration": config,
                "ravendb_status": status,
                "ravendb": answer,
            }
            path = os.path.join(args.out, name + ".json")
            with open(path, "w") as f:
                json.dump(fixture, f, indent=2, ensure_ascii=False)
                f.write("\n")
            print(f"  {name}: {summarise(status, answer)}")
    finally:
        server.request("DELETE", "/admin/databases", {"DatabaseNames": [db], "HardDelete": True})
    print(f"wrote fixtures to {args.out}")


if __name__ == "__main__":
    main()
