"""The wire: the AMI protocol, client and actions on Twisted. It knows nothing of what the
jobs and the dialer decide with it."""

DEFAULT_USER = "ictcontact"   # the server's and the dialer's user in asterisk-conf/manager.conf
DEFAULT_PORT = 5038           # manager.conf's default port
