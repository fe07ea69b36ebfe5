"""What runs on a node: inventory collection (``inventory``) and environmental items
(``items``)."""
