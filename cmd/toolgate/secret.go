package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// maxSecretBytes bounds what is read from a secret file: tokens and signing
// secrets are short, and a path pointing at something large is a mistake.
const maxSecretBytes = 64 << 10

// secret returns a secret from file when the config names one, else from
// the environment variable envKey ("" when unset).
func secret(env environ, envKey, file string) (string, error) {
	if file == "" {
		return env.Getenv(envKey), nil
	}
	return readSecretFile(file)
}

// configuredSecret reads the secret a config section names in its NAME_env
// or NAME_file key (envKey, file): "" when it names none; one it names that
// cannot be read, or is empty or unset, is an error.
func configuredSecret(env environ, section, name, envKey, file string) (string, error) {
	if envKey == "" && file == "" {
		return "", nil
	}
	v, err := secret(env, envKey, file)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s.%s_file: %w", section, name, err)
	case v == "":
		return "", fmt.Errorf("%s: %s is empty or not set", section, secretSource(envKey, file))
	}
	return v, nil
}

// secretSource names where secret reads from, for messages.
func secretSource(envKey, file string) string {
	if file != "" {
		return file
	}
	return "$" + envKey
}

// readSecretFile reads the secret in the file at path, trimmed of
// surrounding white space. Like ssh with a private key, it refuses a file
// that group or others can access: the secret is only as private as the
// file, and toolgate would otherwise run quietly with a leaked token.
// (Windows has no such mode bits; there the check is skipped.)
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the file checked is the one read.
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("permissions %04o for secret file %s are too open: it must be accessible by its owner only (chmod 600 %s)", perm, path, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("secret file %s is larger than %d bytes", path, maxSecretBytes)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}
