"""Trends: one query interface (`TrendStore`) over the per-minute rollups of either store."""
