"""Run the stock tap: python -m benchmarks.stock_tap --config cfg.json."""

from benchmarks.stock_tap.tap import TapStockAnalytics

TapStockAnalytics.cli()
