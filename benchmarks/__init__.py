"""asv benchmark suites of fastops, one module per op family (see asv.conf.json)."""
