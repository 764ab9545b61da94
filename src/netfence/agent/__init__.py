"""The enforcement agent: I/O edges that talk to the kernel (nftables, NFLOG)."""
