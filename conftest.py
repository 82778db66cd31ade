# Repository-level pytest configuration: the idemtest plugin itself is loaded
# through its pytest11 entry point once the package is installed.
