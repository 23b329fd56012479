#!/usr/bin/env python3
"""Record RavenDB's answers to the Raven ETL test endpoint as conformance fixtures.

Usage:
    python3 tests/conformance/record_raven_etl.py [--url http://127.0.0.1:8099] \
        [--out crates/corvid-server/tests/fixtures/raven_etl] [--only NAME ...]

Against a RavenDB (4.1) server this creates a throwaway database, stores the source documents
and their attachments, POSTs every case to `/databases/{db}/admin/etl/raven/test` and writes
one fixture per case:

    {"name", "description", "documents": [{"id", "document", "attachments":
        [{"name", "content_type", "base64"}]}], "document_id", "configuration",
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
DEFAULT_OUT = os.path.join(REPO, "crates", "corvid-server", "tests", "fixtures", "raven_etl")

# ---------------------------------------------------------------------------------------------
# Source documents: every case sees the same set, so a Corvid test can create them all.

PNG = b"\x89PNG\r\n\x1a\nnot-really-a-png"
TXT = b"hello attachments"

DOCUMENTS = [
    {
        "id": "users/1",
        "document": {
            "Name": "Ann",
            "Age": 30,
            "Score": 4.5,
            "Address": {"City": "Oslo", "Zip": None},
            "Tags": ["a", "b"],
            "ManagerId": "users/2",
            "@metadata": {"@collection": "Users", "Custom": "keep-me"},
        },
        "attachments": [
            {"name": "photo.png", "content_type": "image/png", "base64": base64.b64encode(PNG).decode()},
            {"name": "notes.txt", "content_type": "text/plain", "base64": base64.b64encode(TXT).decode()},
        ],
    },
    {
        "id": "users/2",
        "document": {"Name": "Bob", "Age": 17, "ManagerId": "users/404", "@metadata": {"@collection": "Users"}},
        "attachments": [],
    },
    {
        "id": "orders/1",
        "document": {
            "Customer": "users/1",
            "Lines": [
                {"Product": "p1", "Qty": 2, "Price": 3.5},
                {"Product": "p2", "Qty": 1, "Price": 10},
            ],
            "@metadata": {"@collection": "Orders"},
        },
        "attachments": [],
    },
]

# ---------------------------------------------------------------------------------------------
# Cases: (name, description, document id, collections, script[, apply_to_all]).

CASES = [
    ("empty_script_copy", "empty script: the document is copied as is, same id and collection",
     "users/2", ["Users"], ""),
    ("empty_script_copy_with_attachments", "empty script: the document and both of its attachments",
     "users/1", ["Users"], ""),
    ("whitespace_script_copy", "a script of only whitespace counts as empty",
     "users/2", ["Users"], "  \n\t "),
    ("empty_script_all_documents", "empty script with ApplyToAllDocuments",
     "orders/1", [], "", True),
    ("same_collection_keeps_id", "loadToUsers from Users keeps the source id, no delete",
     "users/1", ["Users"], "loadToUsers({Name: this.Name, Age: this.Age + 1, City: this.Address.City});"),
    ("same_collection_lowercase_target", "loadTousers from Users: same collection (no prefix), @collection 'users'",
     "users/1", ["Users"], "loadTousers({Name: this.Name});"),
    ("other_collection_people", "loadToPeople: DELETE by prefix users/1/people/ then PUT users/1/people/",
     "users/1", ["Users"], "loadToPeople({Name: this.Name, Tags: this.Tags});"),
    ("other_collection_orderlines_prefix", "OrderLines keeps its casing as prefix; one PUT per line",
     "orders/1", ["Orders"],
     "for (var i = 0; i < this.Lines.length; i++) {\n"
     "  var l = this.Lines[i];\n"
     "  loadToOrderLines({Order: id(this), Product: l.Product, Cost: l.Qty * l.Price});\n"
     "}"),
    ("other_collection_all_caps_prefix", "PEOPLE keeps its casing as prefix",
     "users/1", ["Users"], "loadToPEOPLE({Name: this.Name});"),
    ("fan_out_several_collections", "fan-out: all prefix deletes first, then the PUTs in script order",
     "users/1", ["Users"],
     "loadToPeople({Name: this.Name});\n"
     "loadToUsers({Name: this.Name, Copied: true});\n"
     "loadToArchive({Who: this.Name, Age: this.Age});\n"
     "loadToPeople({Name: this.Name + ' (again)'});"),
    ("filter_passes", "a filter the document passes",
     "users/1", ["Users"], "if (this.Age >= 18) { loadToPeople({Name: this.Name}); }"),
    ("filter_rejects", "a filter the document does not pass: no loadTo call",
     "users/2", ["Users"], "if (this.Age >= 18) { loadToPeople({Name: this.Name}); }"),
    ("metadata_custom_kept_other_collection", "custom metadata kept, @collection forced to the target",
     "users/1", ["Users"],
     "loadToPeople({Name: this.Name, '@metadata': {'Custom': 'mine', 'Nested': {'x': 1}, '@collection': 'Wrong'}});"),
    ("metadata_custom_kept_same_collection", "custom metadata kept for a same-collection load without @collection",
     "users/1", ["Users"],
     "loadToUsers({Name: this.Name, '@metadata': {'Custom': 'mine'}});"),
    ("metadata_explicit_collection_same_collection", "a same-collection load whose object names another @collection",
     "users/1", ["Users"],
     "loadToUsers({Name: this.Name, '@metadata': {'@collection': 'Elsewhere', 'Custom': 2}});"),
    ("load_this_other_collection", "loadToPeople(this): source metadata kept except @collection and extensions",
     "users/1", ["Users"], "loadToPeople(this);"),
    ("modify_this_same_collection", "changing this and loading it to the same collection",
     "users/1", ["Users"], "this.Name = 'Changed'; delete this.Age; loadToUsers(this);"),
    ("attachment_one_arg", "addAttachment(loadAttachment(name)) to the same collection: DELETE, PUT, AttachmentPUT",
     "users/1", ["Users"],
     "var d = loadToUsers({Name: this.Name});\nd.addAttachment(loadAttachment('photo.png'));"),
    ("attachment_two_args", "addAttachment(newName, loadAttachment(name)) renames the attachment",
     "users/1", ["Users"],
     "var d = loadToUsers({Name: this.Name});\n"
     "d.addAttachment('avatar.png', loadAttachment('photo.png'));\n"
     "d.addAttachment(loadAttachment('notes.txt'));"),
    ("attachment_missing", "a missing attachment adds nothing, the DELETE is still sent",
     "users/1", ["Users"],
     "var d = loadToUsers({Name: this.Name});\nd.addAttachment(loadAttachment('nope.bin'));"),
    ("attachment_other_collection", "addAttachment on an other-collection load: prefix DELETE, PUT, AttachmentPUT on the prefix id",
     "users/1", ["Users"],
     "var d = loadToPeople({Name: this.Name});\nd.addAttachment(loadAttachment('notes.txt'));"),
    ("attachment_all_via_get_attachments", "getAttachments() lists name and content type",
     "users/1", ["Users"],
     "var names = [];\n"
     "var all = getAttachments();\n"
     "for (var i = 0; i < all.length; i++) { names.push(all[i].Name + ':' + all[i].ContentType + ':' + all[i].Size); }\n"
     "names.sort();\n"
     "loadToPeople({Name: this.Name, Attachments: names, HasPhoto: hasAttachment('photo.png'), HasNope: hasAttachment('nope')});"),
    ("load_related_document", "load() of a related document",
     "users/1", ["Users"],
     "var m = load(this.ManagerId);\nloadToPeople({Name: this.Name, Manager: m.Name, ManagerAge: m.Age});"),
    ("load_missing_document", "load() of a missing document is null-ish",
     "users/2", ["Users"],
     "var m = load(this.ManagerId);\nloadToPeople({Name: this.Name, HasManager: m != null});"),
    ("id_and_get_metadata", "id(this) and getMetadata(this)",
     "users/1", ["Users"],
     "var md = getMetadata(this);\n"
     "loadToPeople({Id: id(this), Collection: md['@collection'], Custom: md.Custom, "
     "MetaId: md['@id']});"),
    ("script_error_discards_commands", "a throw after loadTo: no commands, one transformation error, output kept",
     "users/1", ["Users"],
     "output('before');\nloadToPeople({Name: this.Name});\nthrow new Error('boom');"),
    ("script_error_missing_method", "calling a missing method on an object throws",
     "users/1", ["Users"], "loadToPeople({Name: this.Name.noSuchMethod()});"),
    ("output_debug", "output() lines go to DebugOutput",
     "users/1", ["Users"],
     "output('hello ' + this.Name);\noutput(this.Age);\noutput(this.Address.City);\nloadToPeople({Name: this.Name});"),
    ("helper_function_in_script", "a function declared in the script",
     "orders/1", ["Orders"],
     "function total(lines) { var t = 0; for (var i = 0; i < lines.length; i++) t += lines[i].Qty * lines[i].Price; return t; }\n"
     "loadToOrders({Customer: this.Customer, Total: total(this.Lines), Count: this.Lines.length});"),
    ("loadto_string_form", "loadTo('People', obj) (4.1 refuses it; later versions and Corvid accept it)",
     "users/1", ["Users"], "loadTo('People', {Name: this.Name});"),
]


def configuration(name, collections, script, apply_to_all=False):
    return {
        "EtlType": "Raven",
        "Name": "conformance-" + name,
        "ConnectionStringName": "conformance-cs",
        "Disabled": False,
        "Transforms": [{
            "Name": "script1",
            "Collections": collections,
            "ApplyToAllDocuments": apply_to_all,
            "Disabled": False,
            "Script": script,
        }],
    }


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("RAVENDB_URL", "http://127.0.0.1:8099"))
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", help="record only these case names")
    args = parser.parse_args()

    server = Server(args.url)
    version = server.must("GET", "/build/version")
    print(f"RavenDB {version.get('FullVersion')} at {server.url}")
    db = f"etl_conformance_{int(time.time())}"
    server.must("PUT", f"/admin/databases?name={q(db)}&replicationFactor=1", {"DatabaseName": db})
    try:
        for _ in range(50):  # the database may take a moment to load
            status, _ = server.request("GET", f"/databases/{q(db)}/stats")
            if status == 200:
                break
            time.sleep(0.2)
        # The 4.1 test endpoint does not look the connection string up; defining one keeps the
        # configuration valid for servers that do.
        server.must("PUT", f"/databases/{q(db)}/admin/connection-strings",
                    {"Type": "Raven", "Name": "conformance-cs", "Database": "nowhere",
                     "TopologyDiscoveryUrls": [server.url]})
        for doc in DOCUMENTS:
            server.must("PUT", f"/databases/{q(db)}/docs?id={q(doc['id'])}", doc["document"])
            for att in doc["attachments"]:
                server.must("PUT", f"/databases/{q(db)}/attachments?id={q(doc['id'])}&name={q(att['name'])}"
                                   f"&contentType={q(att['content_type'])}",
                            raw=base64.b64decode(att["base64"]), content_type="application/octet-stream")

        os.makedirs(args.out, exist_ok=True)
        names = set()
        for case in CASES:
            name, description, doc_id, collections, script = case[:5]
            apply_to_all = case[5] if len(case) > 5 else False
            assert name not in names, name
            names.add(name)
            if args.only and name not in args.only:
                continue
            config = configuration(name, collections, script, apply_to_all)
            request = {"DocumentId": doc_id, "IsDelete": False, "Configuration": config}
            status, answer = server.request("POST", f"/databases/{q(db)}/admin/etl/raven/test", request)
            fixture = {
                "name": name,
                "description": description,
                "recorded_with": version.get("FullVersion"),
                "documents": DOCUMENTS,
                "document_id": doc_id,
                "configuration": config,
                "ravendb_status": status,
                "ravendb": answer,
            }
            path = os.path.join(args.out, name + ".json")
            with open(path, "w") as f:
                json.dump(fixture, f, indent=2, sort_keys=False)
                f.write("\n")
            summary = status
            if isinstance(answer, dict) and "Commands" in answer:
                summary = (f"{status} commands={[c.get('Type') for c in answer['Commands']]} "
                           f"errors={len(answer.get('TransformationErrors') or [])} "
                           f"output={answer.get('DebugOutput')}")
            print(f"  {name}: {summary}")
    finally:
        server.request("DELETE", "/admin/databases", {"DatabaseNames": [db], "HardDelete": True})
    print(f"wrote fixtures to {args.out}")


if __name__ == "__main__":
    main()
