"""reghub: the shell around the packages: settings, command line, embedded broker and demo traffic."""
