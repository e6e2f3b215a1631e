# SPDX-License-Identifier: LGPL-2.1-or-later
"""Browsing the gallery through visualsearch-server's API: GET /api/items
pages the gallery by label, and /api/items/{id}/original gives a folder
gallery's original as it is on disk, only from inside --gallery.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402


def js(body):
    try:
        return json.loads(body)
    except ValueError:
        return {}


with tempfile.TemporaryDirectory() as tmp:
    paths = sf.make_gallery(tmp)
    index = sf.build_index(tmp)
    gallery = os.path.join(tmp, "gallery")
    server = sf.Server("--index", index, "--gallery", gallery)
    try:
        status, ctype, body, _ = server.request("/api/items?limit=7")
        page = js(body)
        check(status == 200 and ctype.startswith("application/json") and
              page.get("total") == 30 and page.get("label") is None and
              [i["id"] for i in page.get("items", [])] == list(range(7)),
              f"/api/items?limit=7: the first 7 of 30 items ({str(page)[:100]})")
        seen = []
        offset = 0
        while offset < 30:
            page = js(server.request(f"/api/items?offset={offset}&limit=7")[2])
            seen += [(i["label"], i["id"]) for i in page.get("items", [])]
            offset += 7
        check(seen == sorted(seen) and len(set(seen)) == 30,
              "paging through /api/items gives every item once, by label and then id")
        page = js(server.request("/api/items?label=1&offset=8&limit=5")[2])
        check(page.get("label") == 1 and page.get("total") == 10 and
              [i["source"] for i in page.get("items", [])] == paths[18:20] and
              all(i["thumbnail"] == f"/api/items/{i['id']}/thumbnail" for i in page["items"]),
              f"?label=1&offset=8: the last 2 of the label's 10 ({str(page)[:120]})")
        page = js(server.request("/api/items?label=7")[2])
        check(page.get("total") == 0 and page.get("items") == [], "a label without items: none")
        for query in ("limit=0", "limit=501", "offset=-1", "label=x"):
            status, _, body, _ = server.request(f"/api/items?{query}")
            check(status == 400 and query.split("=")[0] in js(body).get("error", ""),
                  f"/api/items?{query}: 400 naming the parameter")
        status, _, _, _ = server.request("/api/items", data=b"x", method="POST")
        check(status == 405, f"POST /api/items: 405 ({status})")

        status, ctype, body, _ = server.request("/api/items/13/original")
        with open(os.path.join(gallery, paths[13]), "rb") as f:
            check(status == 200 and ctype == "image/png" and body == f.read(),
                  f"/api/items/13/original is the file itself, as image/png ({status} {ctype})")
    finally:
        server.stop()

    # Originals come only from inside --gallery: a link in it that leads out
    # of it is not followed.
    elsewhere = os.path.join(tmp, "elsewhere")
    os.makedirs(elsewhere)
    os.symlink(os.path.join(gallery, "green"), os.path.join(elsewhere, "green"))
    server = sf.Server("--index", index, "--gallery", elsewhere)
    try:
        status, _, body, _ = server.request("/api/items/13/original")
        check(status == 404 and "--gallery" in js(body).get("error", ""),
              f"an original linked from outside --gallery: 404 ({body[:100]})")
    finally:
        server.stop()

finish()
