class UserError(Exception):
    """A problem with the user's input (a parameter, a file, the environment): reported as one line,
    never as a traceback."""
