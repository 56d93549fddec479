"""The names of the file formats rules are read from and written to, stated once.

A module of names only (no parser is imported), so the CLI can list them in its help without
loading the importers. The readers are `rules.parsing` (rule files) and `rules.importers`
(foreign formats); the writers are `rules.export` and its siblings.
"""

from __future__ import annotations

#: Our own rule files: strict, every problem an error or warning of the validator.
RULE_FILE_FORMATS: tuple[str, ...] = ("yaml", "json", "csv")
#: Other servers' and platforms' redirect configurations, converted by `rules.importers`.
FOREIGN_FORMATS: tuple[str, ...] = ("nginx", "apache", "netlify", "netlify-toml", "vercel", "cloudflare-csv",
                                    "wordpress-redirection")
#: Every format `rules import`, `rules validate`, `rules apply` and `rules convert --from` read.
IMPORT_FORMATS: tuple[str, ...] = (*RULE_FILE_FORMATS, *FOREIGN_FORMATS)
#: Server configurations `rules export --format` and `rules convert --to` write (beside rule files).
SERVER_EXPORT_FORMATS: tuple[str, ...] = ("nginx", "apache", "netlify")
#: Every format `rules export --format` and `rules convert --to` write.
EXPORT_FORMATS: tuple[str, ...] = (*RULE_FILE_FORMATS, *SERVER_EXPORT_FORMATS)
