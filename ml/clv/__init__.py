"""Customer lifetime value: expected net revenue per customer over the next N days."""
