""" URL and name patterns of rules, triggers, steps and CTAs ('/pricing*'), matched in SQL. """

# Path (and query) of an event's URL, lower-cased, without scheme, host and fragment: what '/pricing*' patterns match.
PATH_QUERY = "lower(split_part(COALESCE(NULLIF(regexp_replace(e.url, '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*', ''), ''), '/'), '#', 1))"


def glob_to_like(pattern):
    """ '/pricing*' -> '/pricing%': '*' is any text, every other character is itself. """
    escaped = pattern.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')
    return escaped.replace('*', '%')
