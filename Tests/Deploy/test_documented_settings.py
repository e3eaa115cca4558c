"""The READMEs document exactly the settings the binaries read: each variable a server's
`config` lists is in a README table, and each `MAAS_<SERVICE>_*` variable a README names is one
that service reads. Docs that drift from the code mislead the operator who reads them at 3 a.m."""
import os
import re
import unittest

from support import ROOT, describe, servers

# Where each server's own settings are documented, beside the top-level README's shared tables.
SERVICE_README = {
    "maas-gateway": "Sources/Gateway/README.md",
    "maas-registry": "Sources/Registry/README.md",
    "maas-scheduler": "Sources/Scheduler/README.md",
    "maas-quota": "Sources/Quota/README.md",
}
# The top-level README shows the runtime's server settings once, for the echo server, and its
# database settings once, for quota (`MAAS_<SERVICE>_` stands for every prefix).
SHOWN_SERVER_PREFIX = "MAAS_ECHO"
SHOWN_DATABASE_PREFIX = "MAAS_QUOTA"
# A name in a README, placeholders such as `<RESOURCE>` included.
NAME = re.compile(r"MAAS_[A-Z0-9_]*(?:<[A-Z]+>[A-Z0-9_]*)*")


def read(path):
    with open(os.path.join(ROOT, path)) as file:
        return file.read()


def table_rows(text):
    """The text's Markdown table rows of variables: name -> its default cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `MAAS_"):
            cells = [cell.strip() for cell in line.split("|")[1:-1]]
            rows[cells[0].strip("`")] = cells[1]
    return rows


def pattern(name):
    """A documented name as a regular expression: `<RESOURCE>` stands for any upper-case word."""
    return re.compile("".join("[A-Z0-9_]+" if part.startswith("<") else re.escape(part)
                              for part in re.split(r"(<[A-Z]+>)", name)) + r"\Z")


class EverySettingIsDocumented(unittest.TestCase):
    def documented(self, program, prefix):
        """What documents `program`'s variables, as (pattern, default cell) pairs: its README's
        tables, and the top-level ones with their shown prefix replaced by `prefix`."""
        rows = [(pattern(name), default) for name, default in table_rows(read(SERVICE_README[program])).items()]
        for name, default in table_rows(read("README.md")).items():
            for shown in (SHOWN_SERVER_PREFIX, SHOWN_DATABASE_PREFIX):
                if name.startswith(shown + "_"):
                    rows.append((pattern(prefix + name[len(shown):]), default))
        return rows

    def test_each_variable_a_server_reads_is_in_a_readme_table_with_its_default(self):
        for server in servers():
            program, prefix = server["program"], server["prefix"]
            documented = self.documented(program, prefix)
            variables = describe(program)["variables"]
            self.assertGreater(len(variables), 10, program)
            for variable in variables:
                name, default = variable["name"], variable.get("default")
                with self.subTest(program=program, variable=name):
                    cells = [cell for p, cell in documented if p.match(name)]
                    self.assertTrue(cells, f"{name}, which {program} reads, is in no table of README.md or {SERVICE_README[program]}")
                    # A default written as one value must be the binary's; "unset" must be unset.
                    # Other cells ("required", "the database URL", ...) are words the reader checks.
                    written = re.fullmatch(r"`([^`]*)`", cells[0])
                    if written and default is not None:
                        self.assertEqual(written.group(1), str(default), f"{name}'s documented default")
                    if cells[0] == "unset":
                        self.assertIsNone(default, f"{name} is documented as unset by default")

    def test_each_variable_a_readme_names_is_read_by_its_service(self):
        readmes = ["README.md", "k8s/README.md", "services/README.md", *SERVICE_README.values()]
        by_prefix = {server["prefix"]: (server["program"], [v["name"] for v in describe(server["program"])["variables"]])
                     for server in servers()}
        for readme in readmes:
            for name in sorted(set(NAME.findall(read(readme)))):
                owner = next((prefix for prefix in by_prefix if name.startswith(prefix + "_")), None)
                if owner is None or name.endswith("_"):
                    # The echo server's, `MAAS_<SERVICE>_`, a prefix alone ("`MAAS_QUOTA_` shown"),
                    # or a tool's (MAAS_GATEWAY is maasctl's).
                    continue
                program, variables = by_prefix[owner]
                with self.subTest(readme=readme, variable=name):
                    self.assertTrue(any(pattern(name).match(variable) for variable in variables),
                                    f"{readme} names {name}, which {program} does not read")


if __name__ == "__main__":
    unittest.main()
