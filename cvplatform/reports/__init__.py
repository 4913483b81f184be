"""Reports: a benchmark's stored data turned into a technical and a simple view, in JSON, CSV,
HTML and PDF. Pure functions of a :class:`cvplatform.reports.inputs.ReportInput`: never Ray, never
a clock, never a random number, so the same input gives the same bytes in every format."""
