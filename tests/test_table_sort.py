"""The HTML's table of every image sorts by any column, with the report's own script only:
run in Node against a minimal DOM built from the rendered table."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from reportgen.render import html as html_render
from synthetic import synthetic_result

NODE = shutil.which("node") or shutil.which("nodejs")

DOM = r"""
const data = JSON.parse(require("fs").readFileSync(0, "utf8"));
function attributes(map) {
  return {
    attrs: Object.assign({}, map),
    hasAttribute(k) { return k in this.attrs; },
    getAttribute(k) { return k in this.attrs ? this.attrs[k] : null; },
    setAttribute(k, v) { this.attrs[k] = String(v); },
    removeAttribute(k) { delete this.attrs[k]; },
  };
}
const headers = data.headers.map(h => Object.assign(attributes(h.attrs), {
  style: {}, listeners: [], addEventListener(type, f) { this.listeners.push(f); } }));
const body = { rows: data.rows.map(r => ({ cells: r.map(c => Object.assign(attributes(c.attrs), { textContent: c.text })) })),
  appendChild(row) { this.rows.splice(this.rows.indexOf(row), 1); this.rows.push(row); } };
const table = { tHead: { rows: [{ cells: headers }] }, tBodies: [body] };
global.document = { getElementById: id => (id === "all-images-table" ? table : null) };
eval(data.script);
const out = [];
for (const click of data.clicks) {
  headers[click].listeners.forEach(f => f());
  out.push(body.rows.map(r => r.cells[0].textContent.trim()));
}
console.log(JSON.stringify(out));
"""


class TableParser(HTMLParser):
    """The all-images table's headers and cells, and the script after it."""

    def __init__(self):
        super().__init__()
        self.headers, self.rows, self.script = [], [], ""
        self._in_table = self._in_script = False
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "all-images-table":
            self._in_table = True
        elif self._in_table and tag in ("th", "td"):
            self._cell = {"attrs": {k: v for k, v in attrs.items() if k.startswith("data-")}, "text": ""}
        elif self._in_table and tag == "tr" and self.headers:
            self.rows.append([])
        elif tag == "script" and self.headers:
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "table" and self._in_table:
            self._in_table = False
        elif self._in_table and tag in ("th", "td") and self._cell is not None:
            (self.headers.append(self._cell) if tag == "th" else self.rows[-1].append(self._cell))
            self._cell = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        elif self._in_script:
            self.script += data


@pytest.mark.skipif(NODE is None, reason="needs Node.js (.ci/run installs it)")
def test_every_column_sorts_both_ways(tmp_path):
    from dataclasses import replace

    from reportgen.render import charts

    result = synthetic_result(40, tmp_path)
    result = replace(result, charts=charts.draw_all(result, tmp_path))
    parser = TableParser()
    parser.feed(html_render.render_report(result))
    assert len(parser.rows) == 40 and parser.script
    names = [h["text"] for h in parser.headers]
    columns = {name: k for k, name in enumerate(names)}
    clicks = [columns["resnet152 concentration"], columns["resnet152 concentration"],
              columns["mean agreement"], columns["Image"], columns["Image"]]
    payload = {"headers": parser.headers, "rows": parser.rows, "script": parser.script, "clicks": clicks}
    run = subprocess.run([NODE, "-e", DOM], input=json.dumps(payload), capture_output=True, text=True,
                         check=True, timeout=60)
    orders = json.loads(run.stdout)

    records = {i.shown: i for i in result.images}
    def concentration(shown):
        return records[shown].models["resnet152"].methods["saliency"].stats["concentration_top5"]

    from reportgen.selection import mean_agreement
    assert orders[0] == sorted(records, key=concentration)
    assert orders[1] == sorted(records, key=concentration, reverse=True)
    assert orders[2] == sorted(records, key=lambda s: mean_agreement(records[s]))
    assert orders[3] == sorted(records)
    assert orders[4] == sorted(records, reverse=True)
