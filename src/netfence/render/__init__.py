"""Output formats (pure): text tables, JSON, YAML-free CSV, DOT, Mermaid, Markdown, JUnit.

Every value that comes from input is escaped for its format (INPUT.md "Output safety").
"""
