"""The data space authority: issues credentials over DCP, publishes status lists, directory and trust list."""
