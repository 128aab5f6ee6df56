"""Connect's pages: the Connect page staff send links from (``search``), and Admin >
Connections (``connections``), registered by this feature's own scan so that a host without
Connect has neither."""
