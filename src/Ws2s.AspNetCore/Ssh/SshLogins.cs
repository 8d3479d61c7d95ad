using System.Net;
using System.Security.Cryptography;
using System.Text;
using Renci.SshNet;
using Renci.SshNet.Common;
using Ws2s.Protocol;

namespace Ws2s.AspNetCore.Ssh;

/// <summary>
/// The SSH logins tunnels run over. Tunnels of one client to the same server as the same user
/// with the same credentials share one login (the server already trusted those credentials
/// for that client); it closes when its last tunnel does. A client may hold a bounded number.
/// Private keys are decrypted outside any shared lock, a few at a time, and only when their
/// key-derivation cost is within <c>ssh.maxKdfRounds</c>.
/// </summary>
internal sealed class SshLogins(KnownHosts knownHosts, TimeSpan timeout, int maxPerClient, int maxKdfRounds)
{
    private readonly Lock _gate = new();

    /// <summary>Keys being decrypted at once (CPU work): one per core.</summary>
    private readonly SemaphoreSlim _keyWorkers = new(Environment.ProcessorCount);
    private readonly Dictionary<Key, Shared> _open = [];

    internal sealed record Key(IPAddress Client, IPEndPoint Server, string Username, string Credentials);

    internal sealed class Shared(Key key, Task<SshClient> connecting)
    {
        public Key Key => key;
        public Task<SshClient> Connecting => connecting;
        public int Tunnels;

        /// <summary>A login whose connection dropped is not handed out again.</summary>
        public bool IsDead => connecting.IsCompletedSuccessfully && !connecting.Result.IsConnected;
    }

    /// <summary>A tunnel's hold on a connected SSH login; disposing it lets the login close once unused.</summary>
    public sealed class Lease : IDisposable
    {
        private readonly SshLogins _owner;
        private readonly Shared _shared;
        private int _released;

        internal Lease(SshLogins owner, Shared shared, SshClient client)
        {
            _owner = owner;
            _shared = shared;
            Client = client;
        }

        public SshClient Client { get; }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) _owner.Release(_shared);
        }
    }

    /// <summary>
    /// Thrown when a tunnel cannot be opened for a reason its message gives in words: a limit, a key
    /// too costly or unreadable, an untrusted host key. Never carries a secret.
    /// </summary>
    public sealed class RefusedException(string message) : Exception(message);

    /// <summary>
    /// A connected login for this client, server and credentials: the open one, or a new one (which the
    /// tunnels asking meanwhile share). Logging in is bounded by the configured timeout, not by any
    /// one tunnel's lifetime.
    /// </summary>
    public async Task<Lease> AcquireAsync(IPAddress client, IPEndPoint server, SshLogin login)
    {
        var key = new Key(client, server, login.Username, Digest(login));
        Shared shared;
        lock (_gate)
        {
            if (!_open.TryGetValue(key, out shared!) || shared.IsDead)
            {
                if (_open.Values.Count(s => s.Key.Client.Equals(client) && !s.IsDead) >= maxPerClient)
                    throw new RefusedException($"too many SSH logins from this client (at most {maxPerClient})");
                // Started on the pool: reading a key is CPU work that must not run under the lock.
                shared = new Shared(key, Task.Run(() => ConnectAsync(server, login)));
                _open[key] = shared; // a dead one stays alive only through the leases that still hold it
            }
            shared.Tunnels++;
        }
        try
        {
            return new Lease(this, shared, await shared.Connecting);
        }
        catch
        {
            Release(shared);
            throw;
        }
    }

    private void Release(Shared shared)
    {
        lock (_gate)
        {
            if (--shared.Tunnels > 0) return;
            if (_open.TryGetValue(shared.Key, out var current) && current == shared) _open.Remove(shared.Key);
        }
        // Disconnecting waits for the server: off the caller's thread.
        if (shared.Connecting.IsCompletedSuccessfully) _ = Task.Run(() =>
        {
            try { shared.Connecting.Result.Dispose(); }
            catch (Exception e) when (e is SshException or ObjectDisposedException or System.Net.Sockets.SocketException) { }
        });
    }

    private async Task<SshClient> ConnectAsync(IPEndPoint server, SshLogin login)
    {
        var methods = new List<AuthenticationMethod>();
        if (login.PrivateKey is { } key)
            methods.Add(new PrivateKeyAuthenticationMethod(login.Username, await ReadKeyAsync(key.Value, login.PrivateKeyPassword?.Value)));
        if (login.Password is { } password) methods.Add(new PasswordAuthenticationMethod(login.Username, password.Value));
        // The codec admits no tunnel without a password or a key (code 7), so methods is never empty here.

        var client = new SshClient(new Renci.SshNet.ConnectionInfo(server.Address.ToString(), server.Port, login.Username, [.. methods]) { Timeout = timeout });
        string? refusedKey = null;
        client.HostKeyReceived += (_, e) =>
        {
            e.CanTrust = knownHosts.Trusts(login.Host.Canonical, login.Port.Value, e.HostKeyName, e.HostKey)
                         || knownHosts.Trusts(server.Address.ToString(), server.Port, e.HostKeyName, e.HostKey);
            if (!e.CanTrust) refusedKey = $"the host key of {login.Host.Written} ({e.HostKeyName} SHA256:{e.FingerPrintSHA256}) is not in ssh.knownHosts";
        };
        try
        {
            await client.ConnectAsync(CancellationToken.None);
            return client;
        }
        catch (SshConnectionException) when (refusedKey is not null)
        {
            client.Dispose();
            throw new RefusedException(refusedKey);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Decrypts a private key if its cost is within bounds, on one of the key workers, waiting for one at most the SSH timeout.</summary>
    private async Task<PrivateKeyFile> ReadKeyAsync(string key, string? passphrase)
    {
        if (PrivateKeyCost.Problem(key, maxKdfRounds) is { } problem) throw new RefusedException(problem);
        if (!await _keyWorkers.WaitAsync(timeout)) throw new RefusedException("the server is busy reading other private keys; try again");
        try
        {
            using var text = new MemoryStream(Encoding.UTF8.GetBytes(key));
            return passphrase is not null ? new PrivateKeyFile(text, passphrase) : new PrivateKeyFile(text);
        }
        catch (SshPassPhraseNullOrEmptyException)
        {
            throw new RefusedException("the private key needs ssh_private_key_password");
        }
        catch (Exception e) when (e is SshException or InvalidOperationException or ArgumentException or FormatException
                                      or NotSupportedException or System.Security.Cryptography.CryptographicException)
        {
            // What SSH.NET throws for a key it cannot parse or decrypt, and only around the parsing.
            throw new RefusedException("the private key could not be read (OpenSSH or PEM; RSA, ECDSA or Ed25519; check its passphrase)");
        }
        finally
        {
            _keyWorkers.Release();
        }
    }

    /// <summary>Which credentials opened a login, without keeping them: a digest of password, key and passphrase.</summary>
    private static string Digest(SshLogin login) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{login.Password?.Value}\0{login.PrivateKey?.Value}\0{login.PrivateKeyPassword?.Value}")));
}
