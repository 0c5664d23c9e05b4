"""What reaches people: the PDF report, e-mail with its send-once ledger, digests."""
