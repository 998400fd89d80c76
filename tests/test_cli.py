"""The CLI contract of ../shared/ARCHITECTURE.md: help, bad arguments and bad configs give one clear line."""

import subprocess
import sys

from widecol.cli import main
from widecol.config import node_config


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "widecol.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_help_lists_serve():
    result = run("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_config_without_node_is_one_clear_line(tmp_path):
    result = run("serve", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--node" in result.stderr


def test_missing_cluster_file_names_the_file(tmp_path):
    result = run("serve", "--config", str(tmp_path / "missing.toml"), "--node", "n1")
    assert result.returncode == 2
    assert "missing.toml" in result.stderr and "no such cluster file" in result.stderr


def test_bad_key_is_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[cluster]\nname="x"\n[storage]\ncommitlog_sync="sometimes"\n[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    result = run("serve", "--config", str(f), "--node", "n1")
    assert result.returncode == 2
    assert "storage.commitlog_sync" in result.stderr


def test_unknown_key_is_an_error(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[storage]\nmemtable_megabytes=3\n[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    result = run("serve", "--config", str(f), "--node", "n1")
    assert result.returncode == 2
    assert "storage.memtable_megabytes: unknown key" in result.stderr


def test_unknown_node_lists_the_nodes(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    result = run("serve", "--config", str(f), "--node", "n9")
    assert result.returncode == 2
    assert "n9" in result.stderr and "n1" in result.stderr


def test_repository_cluster_file_has_three_loopback_nodes():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "cluster.toml"
    configs = [node_config(path, name) for name in ("n1", "n2", "n3")]
    assert [c.address for c in configs] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert all(c.data_dir.is_absolute() and c.data_dir.parent == path.parent / "data" for c in configs)


def test_cluster_sections_are_read_and_checked(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[cluster]\nseeds = ["127.0.0.1"]\nsecret = "s"\n[streaming]\nthroughput_mb_s = 8\n'
                 '[hints]\nenabled = false\n[[nodes]]\nname="n1"\naddress="127.0.0.1"\ninternode_port = 7100\n')
    config = node_config(f, "n1")
    assert config.seeds == ("127.0.0.1:7100",)  # a seed's internode port comes from its node entry
    assert (config.streaming.throughput_mb_s, config.hints.enabled, config.standalone) == (8.0, False, False)
    f.write_text('[streaming]\nthroughput_mb_s = -1\n[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    result = run("serve", "--config", str(f), "--node", "n1")
    assert result.returncode == 2 and "streaming.throughput_mb_s" in result.stderr


def test_block_cache_size_reaches_the_engine_and_is_checked(tmp_path):
    from widecol.storage.engine import EngineOptions

    f = tmp_path / "c.toml"
    f.write_text('[storage]\nblock_cache_mb = 4\n[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    assert EngineOptions.from_config(node_config(f, "n1").storage).block_cache_bytes == 4 * 1024 * 1024
    f.write_text('[storage]\nblock_cache_mb = -1\n[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    result = run("serve", "--config", str(f), "--node", "n1")
    assert result.returncode == 2 and "storage.block_cache_mb" in result.stderr


def test_compaction_process_is_a_storage_setting(tmp_path):
    from widecol.storage.engine import EngineOptions

    f = tmp_path / "c.toml"
    f.write_text('[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    assert EngineOptions.from_config(node_config(f, "n1").storage).compaction_process is True
    f.write_text('[storage]\ncompaction_process = false\n[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    assert EngineOptions.from_config(node_config(f, "n1").storage).compaction_process is False
    f.write_text('[storage]\ncompaction_process = "yes"\n[[nodes]]\nname="n1"\naddress="127.0.0.1"\n')
    result = run("serve", "--config", str(f), "--node", "n1")
    assert result.returncode == 2 and "storage.compaction_process" in result.stderr
