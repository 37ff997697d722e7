from click.testing import CliRunner

from lsr.cli import main
from tests.conftest import BUNDLED


def test_validate_every_bundled_topology():
    assert len(BUNDLED) >= 5
    for f in BUNDLED:
        r = CliRunner().invoke(main, ["topo", "validate", str(f)])
        assert r.exit_code == 0, r.output
        assert ": ok: " in r.output
