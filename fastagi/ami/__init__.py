"""The wire: the AMI protocol, client and actions on Twisted. It knows nothing of what the
jobs and the dialer decide with it."""
