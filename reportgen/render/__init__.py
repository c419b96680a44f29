"""From plain records to files: pictures, charts, HTML, PDF. Never imports mxnet."""
