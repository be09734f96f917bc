# nothing to export
