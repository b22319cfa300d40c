from sectl.audio import find_audio_files, pair_files
from tests.conftest import tone, write_wav


def test_pairs_by_relative_path_and_lists_unpaired(tmp_path):
    for name in ["a.wav", "sub/b.wav", "only_ref.wav"]:
        write_wav(tmp_path / "ref" / name, tone(0.1))
    for name in ["a.wav", "sub/b.wav", "only_est.flac"]:
        write_wav(tmp_path / "est" / name, tone(0.1))
    (tmp_path / "est" / "readme.txt").write_text("not audio")
    pairing = pair_files(tmp_path / "est", ref=tmp_path / "ref")
    assert [name for name, _, _ in pairing.pairs] == ["a.wav", "sub/b.wav"]
    assert pairing.only_ref == ["only_ref.wav"]
    assert pairing.only_est == ["only_est.flac"]


def test_find_audio_files_on_a_single_file(tmp_path):
    path = write_wav(tmp_path / "x.wav", tone(0.1))
    assert find_audio_files(path) == [path]
