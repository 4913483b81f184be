"""Where a dataset's files live under ``<data dir>/artifacts/datasets/<id>/``."""

UPLOAD_ARCHIVE = "upload.zip"  # the uploaded ZIP, until it is unpacked into files/
UPLOAD_TABLE = "upload.csv"  # a CSV alone, naming files under the import directory
METADATA_TABLE = "metadata.csv"  # the CSV uploaded beside a ZIP
MANIFEST = "manifest.jsonl"  # one validated sample a line
