"""report.html read as XML: sections by id, elements by class."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def parse(html: str) -> ET.Element:
    """The report is well-formed XML too; SVG namespaces are dropped to keep queries short."""
    root = ET.fromstring(html)
    for el in root.iter():
        el.tag = el.tag.rsplit("}", 1)[-1]
    return root


def section(doc: ET.Element, sid: str) -> ET.Element:
    found = doc.find(f".//section[@id='{sid}']")
    assert found is not None, f"no section {sid}"
    return found


def with_class(el: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in el.iter(tag) if cls in (e.get("class") or "").split()]
