"""REVISIT_OUTPUT_DIR names the output root: a local path or file:// URL is a folder on this
host; any other scheme is an object store (revisit.bridge.workspace mirrors it per task)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revisit.config.paths import on_object_store, output_root


@pytest.mark.parametrize("location", ["s3://revisit_s3@bucket/out", "gs://bucket/x",
                                      "S3A://conn@b/p"])
def test_an_object_store_url_has_no_local_folder(location, monkeypatch):
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", location)
    assert on_object_store(location)
    with pytest.raises(ValueError, match="object storage"):
        output_root()


@pytest.mark.parametrize("location, folder", [
    ("file:///srv/revisit/out", "/srv/revisit/out"),
    ("file://localhost/srv/revisit/out", "/srv/revisit/out"),
    ("file:///srv/with%20space", "/srv/with space"),
    ("/srv/plain", "/srv/plain"),
])
def test_a_local_path_or_file_url_is_the_folder_it_names(location, folder, monkeypatch):
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", location)
    assert not on_object_store(location)
    assert output_root() == Path(folder)


def test_a_file_url_of_another_host_is_refused(monkeypatch):
    monkeypatch.setenv("REVISIT_OUTPUT_DIR", "file://fileserver/share/out")
    with pytest.raises(ValueError, match="another host"):
        output_root()
