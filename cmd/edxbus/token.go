package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"
)

// newTokenCommand makes keys and tokens for the broker's token
// authentication, like `pulsar tokens`; the tokens also work with a Pulsar
// cluster configured with the same key.
func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create secret keys and JWTs for Pulsar token authentication",
		Args:  cobra.NoArgs,
	}
	var output string
	createKey := &cobra.Command{
		Use:     "create-secret-key",
		Short:   "Write a new random HMAC secret key (32 bytes) to a file readable only by its owner",
		Example: "  edxbus token create-secret-key --output secret.key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return errors.New("--output is required: a secret key is never printed")
			}
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("--output: %w", err)
			}
			if _, err := f.Write(key); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
	createKey.Flags().StringVar(&output, "output", "", "file to create (refused if it exists)")

	var secretFile, privateFile, subject string
	var expiry time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Print a JWT whose subject is the role, signed with a secret key or a private key",
		Example: "  edxbus token create --secret-key-file secret.key --subject studio --expiry 720h > studio.token\n" +
			"  edxbus token create --private-key-file private.pem --subject discovery",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if subject == "" {
				return errors.New("--subject (the role) is required")
			}
			if (secretFile == "") == (privateFile == "") {
				return errors.New("give one of --secret-key-file and --private-key-file")
			}
			claims := jwt.RegisteredClaims{Subject: subject}
			if expiry > 0 {
				claims.ExpiresAt = jwt.NewNumericDate(time.Now().Add(expiry))
			}
			var method jwt.SigningMethod = jwt.SigningMethodHS256
			var key any
			if secretFile != "" {
				raw, err := os.ReadFile(secretFile)
				if err != nil {
					return fmt.Errorf("--secret-key-file: %w", err)
				}
				key = raw
			} else {
				priv, err := readPrivateKey(privateFile)
				if err != nil {
					return fmt.Errorf("--private-key-file: %w", err)
				}
				key = priv
				method = jwt.SigningMethodRS256
				if _, ok := priv.(*ecdsa.PrivateKey); ok {
					method = jwt.SigningMethodES256
				}
			}
			token, err := jwt.NewWithClaims(method, claims).SignedString(key)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), token)
			return err
		},
	}
	create.Flags().StringVar(&secretFile, "secret-key-file", "", "HMAC secret key (HS256), as the broker's --auth-token-secret-key-file")
	create.Flags().StringVar(&privateFile, "private-key-file", "", "PEM RSA (RS256) or P-256 ECDSA (ES256) private key whose public key the broker holds")
	create.Flags().StringVar(&subject, "subject", "", "the role the token authenticates as")
	create.Flags().DurationVar(&expiry, "expiry", 0, "lifetime of the token (0: it never expires)")
	cmd.AddCommand(createKey, create)
	return cmd
}

func readPrivateKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("not an RSA or ECDSA private key")
}
