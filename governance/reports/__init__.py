"""NIST AI RMF reports: evidence collectors, the snapshot builder, charts and the PDF."""
