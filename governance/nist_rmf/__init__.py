"""The NIST AI RMF 1.0 catalog (versioned data) and the mapping of Forge evidence onto its subcategories."""
