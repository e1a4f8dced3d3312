"""The browser tests' window sizes: a desktop, and the narrowest phone every page must fit
(375 px, the house rule) without sideways scrolling."""
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
