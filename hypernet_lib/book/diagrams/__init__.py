"""Diagrams drawn with matplotlib in the book's style, one module per diagram."""
