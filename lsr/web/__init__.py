"""`lsr lab web NAME`: a live page of a running lab, served on 127.0.0.1 only.

| module | job |
|---|---|
| `lsr.web.timeline` | pure: snapshots of a lab's state, their diff as timeline events, link rates |
| `lsr.web.layout` | node positions (Graphviz, as `lsr draw` lays the topology out) |
| `lsr.web.collect` | `LabView`: snapshots, router tables, LSPs and link changes of a running lab through the lab library (`lsr.lab`) |
| `lsr.web.server` | the HTTP server: JSON endpoints, the page, the sampler thread, the access rules |
| `lsr/web/page.html` | the page: inline SVG and vanilla JS, no network but the server's |
"""
