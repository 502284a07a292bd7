/*
 * The sample message body of the bench programs: a git.receive payload in
 * the shape Fedora's pagure/dist-git sends, as the members of its JSON
 * object (after the opening brace, up to and with the closing one), so
 * that a bench can put a member of its own first.
 */
#ifndef FM_BENCH_PAYLOAD_H
#define FM_BENCH_PAYLOAD_H

#define BENCH_GIT_RECEIVE_MEMBERS \
"\"commit\":{" \
"\"agent\":\"zbyszek\"," \
"\"branch\":\"rawhide\"," \
"\"email\":\"zbyszek@in.waw.pl\"," \
"\"message\":\"Version 256.7\\n\\nCherry-picked fixes from upstream:\\n" \
"- journald: don't crash on a truncated entry (#34122)\\n" \
"- networkd: handle IPv6 RA with zero lifetime\\n" \
"- udev: r\\u00e9\\u00e9valuer les r\\u00e8gles apr\\u00e8s un " \
"changement\\n\\nResolves: rhbz#2312345\\n\"," \
"\"name\":\"Zbigniew J\\u0119drzejewski-Szmek\"," \
"\"namespace\":\"rpms\"," \
"\"path\":\"/srv/git/repositories/rpms/systemd.git\"," \
"\"repo\":\"systemd\"," \
"\"rev\":\"3f1c0a9e7b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e\"," \
"\"seen\":false," \
"\"stats\":{\"files\":{" \
"\"systemd.spec\":{\"additions\":12,\"deletions\":3,\"lines\":15}," \
"\"sources\":{\"additions\":1,\"deletions\":1,\"lines\":2}," \
"\"0001-journald-truncated-entry.patch\":" \
"{\"additions\":48,\"deletions\":0,\"lines\":48}}," \
"\"total\":{\"additions\":61,\"deletions\":4,\"files\":3,\"lines\":65}}," \
"\"summary\":\"Version 256.7\"," \
"\"username\":\"zbyszek\"}," \
"\"agent\":\"zbyszek\"," \
"\"ratio\":0.125," \
"\"refs\":[\"refs/heads/rawhide\",\"refs/tags/v256.7-1\"]}"

#endif
